import sys
from pathlib import Path

# The fixture reader lives beside the tests; make it importable without packaging tests/.
sys.path.insert(0, str(Path(__file__).resolve().parent))
