"""Report stage (workflow/rules/report.smk): the self-contained HTML benchmark report.

inputs (the plan: every file the report reads, by what it is), tables (pandas tables from those files), figures
(embedded PNGs), sections (the HTML of each section) and html (``build_report``: the sections in order).
"""
