"""`python -m ecdiff.models.training [STAGE ...]`: run the training stages in order, resumably."""

from ecdiff.models.training.pipeline import main

raise SystemExit(main())
