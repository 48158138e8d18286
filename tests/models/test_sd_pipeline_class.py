import logging

from ecdiff.models import sd_pipeline_class


def test_only_transformers_torchvision_fallback_notice_is_dropped():
    logger = logging.getLogger("transformers.utils.import_utils")
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger.addHandler(handler)
    try:
        logger.warning("`CLIPImageProcessor` requires torchvision (not installed); falling back to "
                       "`CLIPImageProcessorPil` for backward compatibility.")
        logger.warning("`AutoModel` requires torch (not installed)")
    finally:
        logger.removeHandler(handler)
    assert seen == ["`AutoModel` requires torch (not installed)"]
    assert sd_pipeline_class.StableDiffusionPipeline.__name__ == "StableDiffusionPipeline"
