"""What a person runs around a trained pipeline: evaluate, report, calibrate,
combine (average, ensemble), predict and package."""
