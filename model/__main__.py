import sys

from il2als.cli.main import main

sys.exit(main())
