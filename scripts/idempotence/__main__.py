"""`python -m idempotence`: the gate's command line (scripts/verify_idempotence.sh runs it)."""

import sys

from idempotence.cli import main

sys.exit(main())
