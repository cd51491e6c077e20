"""The analysis: what a parsed module references and how each reference is judged.

`forms.py` describes each reference form once; `resolver.py` finds the private references and the
statements that carry them; `contract.py` reads documentation blocks; `judge.py` turns references
and blocks into verdicts; `declarations.py` judges central declarations; `knowledge.py` asks the
torch index about versions and replacements.
"""
