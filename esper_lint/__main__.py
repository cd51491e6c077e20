import sys

from esper_lint.frontends.cli import main

sys.exit(main())
