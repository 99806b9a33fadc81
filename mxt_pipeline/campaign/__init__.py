"""Monte-Carlo campaigns: seeds, resumable runs on dask.distributed, truth matching, ensemble reports."""
