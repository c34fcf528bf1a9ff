"""On-disk format versions of the stages' outputs. Each rule passes its stage's version as a param, so a release
that changes what a stage writes reruns that stage (and what depends on it) instead of reading stale files; every
writer records the version in its output. Bump a stage's number whenever its output's layout or meaning changes."""

OUTPUT_FORMATS = {"caption": 2, "embed": 2, "train": 2, "evaluate": 2}
