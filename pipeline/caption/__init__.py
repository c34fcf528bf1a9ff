"""Caption stage: long and short synthetic captions per image (:func:`stage.run`); backends in
:mod:`~pipeline.caption.backends`, resumable state in :mod:`~pipeline.caption.partial`."""
