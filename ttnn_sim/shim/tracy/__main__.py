import sys

from ttnn_sim.tracy_cli import main

sys.exit(main())
