"""`python -m vmsd.cli.vmsctl`."""

import sys

from vmsd.cli.vmsctl.main import main

sys.exit(main())
