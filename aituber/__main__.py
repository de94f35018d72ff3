import sys

from aituber.cli import main

sys.exit(main())
