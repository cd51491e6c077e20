import sys

from esper_lint.cli import main

sys.exit(main())
