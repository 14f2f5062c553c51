"""
PostgreSQL's second index on a unique text column.

Django gives every unique or indexed CharField a `..._like` index on
PostgreSQL (varchar_pattern_ops, for LIKE 'prefix%'), beside the unique one.
On the columns that every request writes and nothing searches by prefix
(a hold's request id, a usage record's), it is one more index write per
request for no reader: these migration operations drop it, and put it back
when migrated backwards.
"""

from django.db import migrations


# The names and statements come from the schema editor's own (private)
# helpers, the ones that made the index: the same name on every database.
def without_like_index(model_name: str, field_name: str) -> migrations.RunPython:
    def drop(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            model, field = _field(apps, schema_editor, model_name, field_name)
            name = schema_editor._create_index_name(
                model._meta.db_table, [field.column], suffix="_like"
            )
            schema_editor.execute(
                schema_editor._delete_index_sql(model, name)  # IF EXISTS
            )

    def restore(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            model, field = _field(apps, schema_editor, model_name, field_name)
            schema_editor.execute(schema_editor._create_like_index_sql(model, field))

    return migrations.RunPython(drop, restore, elidable=False)


def _field(apps, schema_editor, model_name: str, field_name: str):
    model = apps.get_model(model_name)
    return model, model._meta.get_field(field_name)
