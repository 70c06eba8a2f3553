"""`python -m pipeline.simulate`: write the simulated ISP's raw inputs and truth."""

import sys

from pipeline.simulate.run import main

sys.exit(main())
