"""
The audit rows of records edited by hand in the Django admin: every admin
that lets staff add, change or delete a record mixes in AuditedEditsMixin,
which writes the row in the transaction that makes the edit, so neither
exists without the other.
"""

from dataclasses import dataclass, field

from django.db import transaction

from audit.services import audit_record


@dataclass(frozen=True)
class InlineEdit:
    """The audit row of one edit made in an inline of an admin page."""

    action: str
    target: str
    summary: str
    data: dict = field(default_factory=dict)


class AuditedEditsMixin:
    """
    For ModelAdmins whose records are edited by hand. `audit_edits` maps
    "create", "change" and "delete" to the action recorded and its summary,
    formatted with `obj` and `fields` (the names of the changed fields); an
    edit it leaves out is not audited, nor a change that changed nothing.
    The row names the record ("plan:7"), its tenant (audit_tenant) and what
    changed (audit_data); inline edits are recorded as audit_inline says.
    """

    audit_edits: dict[str, tuple[str, str]]

    def audit_tenant(self, obj):
        """The tenant `obj` belongs to, or None."""
        return None

    def audit_data(self, obj, form) -> dict:
        """The new value of each field the edit changed."""
        return {name: str(form.cleaned_data.get(name)) for name in form.changed_data}

    def audit_inline(self, parent, obj, verb: str, fields: list[str]):
        """
        The InlineEdit of `verb` ("add", "change" or "delete") done to `obj`
        in an inline of `parent`'s page, `fields` changed; None: not audited.
        """
        return None

    def audit_edit(self, request, obj, what: str, form=None) -> None:
        """Record `what` ("create", "change", "delete") done to `obj`."""
        if what not in self.audit_edits:
            return
        action, summary = self.audit_edits[what]
        changed = form.changed_data if form is not None else []
        audit_record(
            actor=request.user,
            action=action,
            tenant=self.audit_tenant(obj),
            target=f"{obj._meta.model_name}:{obj.pk}",
            summary=summary.format(obj=obj, fields=", ".join(changed)),
            data=self.audit_data(obj, form) if form is not None else {},
        )

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            if not change or form.changed_data:
                self.audit_edit(request, obj, "change" if change else "create", form)

    def delete_model(self, request, obj):
        with transaction.atomic():
            self.audit_edit(request, obj, "delete")
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for obj in queryset:
                self.audit_edit(request, obj, "delete")
            super().delete_queryset(request, queryset)

    def save_formset(self, request, form, formset, change):
        with transaction.atomic():
            super().save_formset(request, form, formset, change)
            edits = [
                *((obj, "add", []) for obj in formset.new_objects),
                *((obj, "change", fields) for obj, fields in formset.changed_objects),
                *((obj, "delete", []) for obj in formset.deleted_objects),
            ]
            for obj, verb, fields in edits:
                edit = self.audit_inline(form.instance, obj, verb, fields)
                if edit is not None:
                    audit_record(
                        actor=request.user,
                        action=edit.action,
                        target=edit.target,
                        summary=edit.summary,
                        data=edit.data,
                    )
