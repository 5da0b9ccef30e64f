from django.urls import path

from . import views

app_name = "reputation"

urlpatterns = [
    path("reviews/mine", views.my_reviews, name="mine"),
    path("reviews/task/<uuid:public_id>", views.task_review, name="task_review"),
    path("reviews/task/<uuid:public_id>/<str:role>/reply", views.reply, name="reply"),
    path("reviews/task/<uuid:public_id>/<str:role>/report", views.report, name="report"),
]
