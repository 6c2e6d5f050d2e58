from django.db import models


class Item(models.Model):
    n = models.IntegerField()
    label = models.TextField()

    class Meta:
        app_label = "cursorapp"
        db_table = "dj_items"
        managed = False  # created and filled by tests/drivers/test_django_iterator.py
