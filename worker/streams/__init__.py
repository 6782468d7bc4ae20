"""The Faust shell: topics, tables and agents. The only Faust-aware code."""
