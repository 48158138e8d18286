import torch

from ecdiff.cli import main


def test_serve_gives_an_in_process_caller_its_torch_thread_count_back(tmp_path):
    before = torch.get_num_threads()
    wanted = 1 if before > 1 else 2
    # It sets the threads, then fails to load the model and returns.
    assert main(["serve", "cloud", "--port", "0", "--torch-threads", str(wanted),
                 "--model", str(tmp_path / "missing")]) == 2
    assert torch.get_num_threads() == before
