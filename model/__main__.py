import sys

from il2als.cli.app import main

sys.exit(main())
