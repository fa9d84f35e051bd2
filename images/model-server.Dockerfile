# The model server image the release publishes (ghcr.io/<owner>/<repo>/model-server:vX.Y.Z): the
# released wheel with the `serve` extra. Models are mounted or baked in by the deploy targets.
FROM python:3.12-slim
COPY dist/ /tmp/dist/
RUN wheel="$(ls /tmp/dist/*.whl)" && pip install --no-cache-dir "${wheel}[serve]" && rm -rf /tmp/dist
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["mlops-bot", "serve"]
