"""Report stage (workflow/rules/report.smk): the self-contained HTML benchmark report.
"""
