"""``python -m kiosk.testing``: the same as ``python -m kiosk.testing.fake_realtime``."""

import sys

from kiosk.testing.fake_realtime import main

sys.exit(main())
