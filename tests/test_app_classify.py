"""The classify view with the shared ImageNet weights and real ImageNet photos."""

from urllib.error import URLError

from conftest import DEV_IMAGES, app_test

ZEBRA = DEV_IMAGES / "n02391049_zebra.JPEG"


def upload(at, path):
    at.segmented_control(key="image_origin").set_value("Upload").run()
    at.file_uploader(key="upload").upload(path.name, path.read_bytes(), "image/jpeg")
    return at.run()


def test_an_uploaded_photo_gets_its_label_with_the_weights_preprocessing():
    at = upload(app_test(view="classify").run(), ZEBRA)
    assert not at.exception and not at.error
    assert at.subheader[0].value.startswith("zebra · ")
    assert at.selectbox(key="weights").value == "local mobilenet_v2_1.0_224_tf2_ptq.pth"
    captions = " ".join(caption.value for caption in at.caption)
    assert "keep central 87.5%, resize to 224" in captions  # the TF weights' crop, read from their sidecar
    # The paper's default uses symmetric padding; these weights were trained with TensorFlow's.
    assert "padding symmetric instead of tf_same" in at.info[0].value


def test_an_edited_architecture_is_named_and_the_weights_architecture_is_used():
    at = upload(app_test(view="classify", width="0.5", res="160", pad="tf_same").run(), ZEBRA)
    note = at.info[0].value
    assert "width 0.5 instead of 1.0" in note and "resolution 160 instead of 224" in note
    assert "padding" not in note
    assert at.subheader[0].value.startswith("zebra · ")


def test_weights_that_cannot_be_downloaded_say_how_to_get_them(monkeypatch):
    def offline(*args, **kwargs):
        raise URLError("[Errno -2] Name or service not known")

    # Never download in tests: torchvision's downloader is replaced by one that is offline.
    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", offline)
    at = app_test(view="classify").run()
    at.selectbox(key="weights").set_value("torchvision IMAGENET1K_V1").run()
    assert not at.exception
    assert "Could not download torchvision IMAGENET1K_V1" in at.error[0].value
    assert "MBV2_WEIGHTS" in at.error[0].value
    at.selectbox(key="weights").set_value("local mobilenet_v2_1.0_224_tf2_ptq.pth").run()
    assert not at.error and at.subheader  # the page keeps working
