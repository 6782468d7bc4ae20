"""Running and checking the worker from outside: a worker subprocess, an output collector and an
oracle of the contract. The demo, the tests, and the chaos and bench commands share them."""
