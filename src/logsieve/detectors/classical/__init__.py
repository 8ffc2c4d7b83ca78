"""Classical detectors over event-count vectors (the loglizer family).

:mod:`.base` holds what they share (:class:`~.base.CountDetector`, the event-count
features and persistence); each model or model group has its own module.
"""
