"""Report stage (:func:`stage.run`): tables, plots and the claims checked."""
