"""Import every torchtopo module and run its core functions with every optional package blocked.

Run by .ci/run in the core-only environment. The packages below are optional for the library (or
only test oracles). The public modules must import without them, and the core code paths (run at
the end) must work without them. The modules that exist for an optional package (the Triton kernel
modules, ``torchtopo.sklearn``) may fail to import with an ImportError naming it: they are listed,
and the public modules must not have imported them.
"""

import importlib
import importlib.abc
import importlib.machinery
import pkgutil
import sys

# Installed in the core environment as test oracles, so blocked here:
BLOCKED = ("sklearn", "matplotlib", "persim", "ot")
# Not installed there at all; listed so that the check below names them if anything loads them.
OPTIONAL = BLOCKED + ("tqdm", "tensorboard", "yaml", "torchvision", "triton", "ripser", "gph", "gtda", "umap")
PUBLIC = ("torchtopo", "torchtopo.functional", "torchtopo.plot", "torchtopo.diagrams", "torchtopo.rips",
          "torchtopo.cubical", "torchtopo.vectorize", "torchtopo.distances", "torchtopo.losses", "torchtopo.ripsnet")


class Blocker(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the blocked packages (so that probes such as ``importlib.util.find_spec``, which torch
    itself runs, still work) and fails to load them."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            return importlib.machinery.ModuleSpec(name, self)
        return None

    def create_module(self, spec):
        raise ImportError(f"{spec.name} is optional for torchtopo and blocked by the core-only check",
                          name=spec.name.split(".")[0])

    def exec_module(self, module):  # never reached: create_module raises
        raise ImportError(module.__name__)


sys.meta_path.insert(0, Blocker())

import torch  # noqa: E402

import torchtopo  # noqa: E402

assert "site-packages" in torchtopo.__file__, f"not the installed wheel: {torchtopo.__file__}"
for name in PUBLIC:
    importlib.import_module(name)
backends = []
modules = [info.name for info in pkgutil.walk_packages(torchtopo.__path__, "torchtopo.")]
for name in modules:
    try:
        importlib.import_module(name)
    except ImportError as error:
        if not any(package in str(error) for package in OPTIONAL):
            raise
        backends.append(f"{name} (needs {error.name or error})")
leaked = sorted({name.split(".")[0] for name in sys.modules} & set(OPTIONAL))
assert not leaked, f"optional packages imported: {leaked}"

# The core paths, end to end.
points = torch.randn(4, 20, 3, requires_grad=True)
dgm = torchtopo.rips_persistence(points, max_dim=2)
image = torchtopo.PersistenceImage(resolution=(5, 5), bandwidth="quantile", dims=(1,), normalize=True).fit(dgm)(dgm)
net = torchtopo.RipsNet.for_features(3, image.flatten(1).shape[1])
history = torchtopo.fit_ripsnet(net, points.detach(), image.flatten(1).detach(), epochs=2, progress=False)
loss = torchtopo.TopologyLoss("ripsnet", net, student_dim=2, teacher_dim=3)(torch.randn(16, 2), torch.randn(16, 3))
cubical = torchtopo.cubical_persistence(torch.rand(2, 8, 8, requires_grad=True))
distance = torchtopo.wasserstein_distance(dgm.to_list(1)[0], dgm.to_list(1)[1])
(dgm.persistence(1).sum() + image.sum() + loss + cubical.persistence(0).sum() + distance).backward()
assert points.grad is not None
print(f"core-only imports ok: {len(modules)} modules, no optional "
      f"package loaded; modules of optional backends (imported lazily): {', '.join(backends)}")
