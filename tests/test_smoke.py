def test_env():
    from django.conf import settings

    assert settings.SECRET_KEY.startswith("test-only")
