-- A deal entering one of this pipeline's stages: no stage edit runs meanwhile.
SELECT version FROM pipelines WHERE id = $1 FOR SHARE
