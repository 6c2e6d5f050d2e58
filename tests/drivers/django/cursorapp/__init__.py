"""The Django app of tests/drivers/django/iterator_check.py: one model, no migrations (the
test creates the table)."""
