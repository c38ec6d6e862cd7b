"""Deep customer analysis (issue #15): a compact, pseudonymous summary of each consenting
shopper's history from the lake, sent through a privacy guard to Amazon Bedrock's Converse
API with a forced, schema-checked tool answer; costed, budgeted, and replaced by an honest
rule-based fallback whenever Bedrock is not configured, fails, answers malformed or the
day's budget is spent. See docs/analysis.md."""
