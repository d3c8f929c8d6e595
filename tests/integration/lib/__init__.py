"""tests/integration/lib: the helper modules the integration tests import (harness, frames, the
daemon environments, fakes and clients). The test programs sit one folder up and import them as
`from lib import harness` or `from lib.harness import ...`."""
