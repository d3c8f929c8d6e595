/* pushctl: subcommands in their own files. */
#ifndef PUSHCTL_H
#define PUSHCTL_H
/* counts | lookup ID_OR_TOKEN | export, read-only on the registry named by the config. */
int pushctl_registry(const char *conf, int argc, char **argv);
/* import-legacy FILE: a legacy SQLite database into the running router and statsd. */
int cmd_import_legacy(const char *conf, int argc, char **argv);
/* import-uwpx [--channels T] [--accounts T] FILE: the UWPX push server's database into the router. */
int cmd_import_uwpx(const char *conf, int argc, char **argv);
/* stats [--start DATE] [--end DATE]: statsd's windows as a table. */
int pushctl_stats(const char *conf, int argc, char **argv);
/* hash-password: a password on stdin → its Argon2id string (stats_password_hash). */
int pushctl_hash_password(int argc, char **argv);
/* cluster-import | cluster-export DIR: a registry into a cluster and back (cluster_cmd.c). */
int pushctl_cluster(const char *conf, int argc, char **argv);
#endif
