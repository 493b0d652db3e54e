"""The words of the planner pages: generations, validation reports, comparison, import."""

ZH_CN: dict[str, str] = {
    # Generations
    "Boundary generations": "边界版本",
    "Generation": "版本",
    "Status": "状态",
    "Description": "说明",
    "Created": "创建",
    "Areas": "区域数",
    "Validation": "校验",
    "draft": "草稿",
    "active": "现行",
    "retired": "已停用",
    "discarded": "已放弃",
    "not validated": "未校验",
    "passes": "通过",
    "fails": "未通过",
    "%(n)s errors": "%(n)s 个错误",
    "%(n)s warnings": "%(n)s 个警告",
    "%(n)s areas checked": "已检查 %(n)s 个区域",
    "No generations yet: import a boundary file.": "尚无边界版本：请导入边界文件。",
    "Generation %(id)s is the open draft: imports go into it until it is activated or "
    "discarded.": "第 %(id)s 版是当前草稿：导入的边界都进入该草稿，直到启用或放弃。",
    "Created by %(name)s at %(time)s": "%(name)s 创建于 %(time)s",
    "Activated by %(name)s at %(time)s": "%(name)s 启用于 %(time)s",
    "Retired by %(name)s at %(time)s": "%(name)s 停用于 %(time)s",
    "This draft was discarded; it has no areas.": "该草稿已放弃，不含任何区域。",
    # A generation's page
    "Changes from the current generation": "与现行版本相比的变化",
    "Compare with generation %(id)s": "与第 %(id)s 版对比",
    "Compare with the generation before": "与上一版对比",
    "This draft changes %(n)s areas outside your scope; an administrator must activate or "
    "discard it.": "该草稿修改了 %(n)s 个不在您管辖范围内的区域，须由管理员启用或放弃。",
    "I have checked the report and the changes: make this draft the current generation.": (
        "我已核对校验报告和边界变化：将此草稿设为现行版本。"
    ),
    "Activate": "启用",
    "The draft cannot be activated until its errors are fixed: correct the file and import it "
    "again.": "草稿存在错误，修正前不能启用：请修改文件后重新导入。",
    "Reason": "原因",
    "Discard this draft and its imported areas.": "放弃此草稿及其导入的区域。",
    "Discard draft": "放弃草稿",
    "Validation report": "校验报告",
    "%(n)s issues outside your scope are not listed.": (
        "另有 %(n)s 个问题不在您的管辖范围内，未列出。"
    ),
    "Click an issue to show it on the map.": "点击问题可在地图上定位。",
    "Severity": "级别",
    "error": "错误",
    "warning": "警告",
    "Check": "问题类型",
    "Level": "层级",
    "Message": "说明",
    "%(n)s more issues are not listed.": "另有 %(n)s 个问题未列出。",
    "No issues in this area.": "该区域没有问题。",
    # Activation and discarding
    "Tick the box to confirm.": "请勾选确认框。",
    "Generation %(id)s was not activated: %(n)s validation errors.": (
        "第 %(id)s 版未启用：校验发现 %(n)s 个错误。"
    ),
    "Generation %(id)s is now active; %(n)s lineage rows recorded.": (
        "第 %(id)s 版已启用，记录了 %(n)s 条沿革。"
    ),
    "Draft generation %(id)s was discarded.": "草稿第 %(id)s 版已放弃。",
    "Draft %(id)s changes %(n)s areas outside your scope (first %(code)s); an administrator "
    "must activate or discard it.": (
        "草稿第 %(id)s 版修改了 %(n)s 个不在您管辖范围内的区域（如 %(code)s），"
        "须由管理员启用或放弃。"
    ),
    # Comparison
    "Compare generations": "版本对比",
    "Before": "变更前",
    "After": "变更后",
    "Compare": "对比",
    "Changed areas": "变化的区域",
    "The two maps move together. Hover over an area to see its code, name and change.": (
        "两幅地图同步移动。鼠标移到区域上可查看编码、名称和变化。"
    ),
    "Lineage": "沿革",
    "Households moved to other areas: %(n)s": "划入其他区域的户数：%(n)s",
    "Old code": "原编码",
    "New code": "新编码",
    "Share of old": "占原区域",
    "Share of new": "占新区域",
    "Households moved": "划转户数",
    "Lineage is recorded when the draft is activated.": "草稿启用时记录沿革。",
    "No lineage between these generations at this level.": "这两个版本之间在该层级没有沿革记录。",
    # Import
    "Import a boundary file": "导入边界文件",
    "Nothing was imported.": "未导入任何内容。",
    "%(n)s problems in %(read)s records; nothing was imported.": (
        "%(read)s 条记录中有 %(n)s 个问题，未导入任何内容。"
    ),
    "Record": "记录",
    "Field": "字段",
    "The file goes into the open draft generation (or a new one), replacing the areas of its "
    "level under the parents it names. The draft is validated; nothing changes for anyone "
    "else until it is activated.": (
        "文件导入当前草稿（没有草稿时新建一个），替换文件中各上级区域下该层级的区域。"
        "导入后自动校验草稿；在启用之前，其他人使用的边界不受影响。"
    ),
    "You may import areas whose parent lies inside your scope.": (
        "您可以导入上级区域在您管辖范围内的区域。"
    ),
    "File (GeoPackage, GeoJSON, zipped Shapefile or CSV with WKT)": (
        "文件（GeoPackage、GeoJSON、Shapefile 压缩包或含 WKT 的 CSV）"
    ),
    "Level of the areas": "区域层级",
    "Coordinate type": "坐标类型",
    "Fields of the file": "文件字段",
    "Code": "编码",
    "Name": "名称",
    "Parent code": "上级编码",
    "Households": "户数",
    "Population": "人口",
    "Kind": "网格类型",
    "Empty fields are read from columns of these names when the file has them.": (
        "留空的字段，如文件中有同名列则自动读取。"
    ),
    "Repair invalid polygons (make_valid), reporting each repair": (
        "修复无效多边形（make_valid），并逐一报告"
    ),
    "Replace the whole level, not only the areas under the parents in the file": (
        "替换整个层级，而不只是文件中各上级区域下的区域"
    ),
    "Import into the draft": "导入草稿",
    "Choose a file to upload.": "请选择要上传的文件。",
    "Upload a GeoPackage, GeoJSON, zipped Shapefile or CSV file.": (
        "请上传 GeoPackage、GeoJSON、Shapefile 压缩包或 CSV 文件。"
    ),
    "Replacing a whole level is for administrators.": "只有管理员可以替换整个层级。",
    "Area %(code)s (or the areas beside it under its parent) is outside your scope %(scope)s; "
    "nothing was imported.": (
        "区域 %(code)s（或其同一上级下的其他区域）不在您的管辖范围 %(scope)s 内，未导入任何内容。"
    ),
    "Imported %(file)s into draft generation %(id)s: %(added)s added, %(replaced)s replaced, "
    "%(unchanged)s unchanged, %(removed)s removed.": (
        "已将 %(file)s 导入草稿第 %(id)s 版：新增 %(added)s，替换 %(replaced)s，"
        "未变 %(unchanged)s，撤销 %(removed)s。"
    ),
}
