"""The site's one URL."""

from django.urls import path

from eventsite import views

urlpatterns = [path("", views.latest_events, name="latest-events")]
