"""Data stage (workflow/rules/data.smk, frames.smk): SynthDive generation, the dataset adapters (Diving48,
FineGym, FineDiving) behind one manifest, the labeled / unlabeled / test splits, and frame extraction into the
memory-mapped frame store.
"""
