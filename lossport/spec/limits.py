"""Upper bounds on sizes that a config, an artifact's metadata or a command-line option can ask
for. They are checked before anything is allocated, so a forged artifact or a typo cannot make
lossport take gigabytes of memory.

| bound | value | applies to |
|---|---|---|
| ``MAX_DIM`` | 16384 | any one dimension of a sampled input (config sizes such as ``num_classes``) |
| ``MAX_ELEMENTS`` | 2**26 | elements of one sampled input (256 MiB of float32) |
| ``MAX_MODULE_BYTES`` | 2 GiB | parameters and buffers of a module built from a config |
| ``MAX_IMAGE_SIDE`` | 4096 | height and width of a preprocessing contract (``--img-size``, ``--size``) |

A spec can bound its own config keys further (:attr:`lossport.spec.Spec.limits`).
"""

MAX_DIM = 16384
MAX_ELEMENTS = 2**26
MAX_MODULE_BYTES = 2 * 1024**3
MAX_IMAGE_SIDE = 4096
