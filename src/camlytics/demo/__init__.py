"""`camlytics demo`: the whole pipeline on a simulated Axis camera, with no camera and no configuration."""
