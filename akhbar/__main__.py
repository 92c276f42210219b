import sys

from akhbar.cli import main

sys.exit(main())
