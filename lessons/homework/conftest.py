# `make test` runs nbval on every notebook under lessons/. The instructor notebooks in source/ are not
# lessons: they are otter-grader's input, with solutions and checks, stored without outputs.
# tests/test_homework.py checks them (every solution passes every check) through otter instead.
collect_ignore_glob = ["source/*.ipynb"]
