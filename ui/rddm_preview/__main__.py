import sys

from rddm_preview.app import main

sys.exit(main())
