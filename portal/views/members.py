"""Members of the current tenant. (Being written: placeholders.)"""

from django.http import HttpResponse


def _todo(request, *args, **kwargs):
    return HttpResponse("Coming soon", status=501)


member_list = member_invite = member_role = member_remove = _todo
invitation_revoke = invitation_accept = _todo
