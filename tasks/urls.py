from django.urls import path

from . import views

app_name = "tasks"

urlpatterns = [
    path("tasks/new", views.create, name="create"),
    path("tasks/mine", views.my_tasks, name="my_tasks"),
    path("tasks/find", views.find_work, name="find_work"),
    path("tasks/jobs", views.my_jobs, name="my_jobs"),
    path("tasks/photos/<uuid:public_id>/", views.photo, name="photo"),
    path("tasks/photos/<uuid:public_id>/thumb", views.photo_thumb, name="photo_thumb"),
    path("tasks/<uuid:public_id>", views.detail, name="detail"),
    path("tasks/<uuid:public_id>/edit", views.edit, name="edit"),
    path("tasks/<uuid:public_id>/publish", views.publish, name="publish"),
    path("tasks/<uuid:public_id>/cancel", views.cancel, name="cancel"),
    path("tasks/<uuid:public_id>/offers", views.offer_create, name="offer_create"),
    path("tasks/<uuid:public_id>/offers/<uuid:offer_id>/accept", views.offer_accept, name="offer_accept"),
    path("tasks/<uuid:public_id>/offers/<uuid:offer_id>/decline", views.offer_decline, name="offer_decline"),
    path("tasks/<uuid:public_id>/offers/<uuid:offer_id>/withdraw", views.offer_withdraw, name="offer_withdraw"),
    path("tasks/<uuid:public_id>/book", views.instant_book, name="instant_book"),
    path("tasks/<uuid:public_id>/check-in", views.check_in, name="check_in"),
    path("tasks/<uuid:public_id>/proof", views.submit_proof, name="submit_proof"),
    path("tasks/<uuid:public_id>/approve", views.approve, name="approve"),
    path("tasks/<uuid:public_id>/request-changes", views.request_changes, name="request_changes"),
]
