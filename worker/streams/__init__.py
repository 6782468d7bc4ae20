"""The Faust shell: topics, tables, the fetch into inboxes and the readers. The only Faust-aware code."""
