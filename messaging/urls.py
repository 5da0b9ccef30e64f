from django.urls import path

from . import views

app_name = "messaging"

urlpatterns = [
    path("messages/", views.inbox, name="inbox"),
    path("messages/search", views.search, name="search"),
    path("messages/files/<uuid:public_id>/", views.attachment, name="attachment"),
    path("messages/files/<uuid:public_id>/thumb", views.attachment_thumb, name="attachment_thumb"),
    path("messages/<uuid:public_id>/", views.conversation, name="conversation"),
    path("messages/<uuid:public_id>/send", views.send, name="send"),
    path("messages/<uuid:public_id>/after", views.after, name="after"),
    path("messages/<uuid:public_id>/read", views.read, name="read"),
    path("tasks/<uuid:public_id>/conversations", views.start, name="start"),
]
