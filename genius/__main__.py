import sys

from genius.cli import main

sys.exit(main())
