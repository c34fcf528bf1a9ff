"""Train stage (:func:`stage.run`): loop, data streams, model, loss, checkpoints, schedule, CLIP baseline."""
