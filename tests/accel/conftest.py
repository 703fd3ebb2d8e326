"""The PyTorch backend's tests: skipped as a whole without torch; one intra-op thread (the CI
machine's two cores are shared, and torch's thread pool only contends on them)."""

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
