# tests/fuzz/: libFuzzer targets (make fuzz); check replays the corpus and saved findings under ASan/UBSan.
TESTS += tests/fuzz/regress.sh
