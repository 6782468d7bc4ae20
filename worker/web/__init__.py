"""HTTP pages served by the worker's Faust web server."""
