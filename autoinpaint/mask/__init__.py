"""The mask stage: RefineMask (clean, grow, feather; refine.py) and Assess (the doubt verdict; assess.py)."""
